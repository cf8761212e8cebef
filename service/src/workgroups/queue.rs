//! One workgroup's queue: its running count and FIFO of waiters, the slot an admitted query
//! holds, and a waiting query that leaves the queue when dropped.

use super::limits::WorkgroupLimits;
use osprey_catalog::WorkgroupRecord;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::oneshot;

/// One workgroup's limits and queue, shared with the queries it admitted (a dropped workgroup
/// lives on until they end).
pub(super) struct Group {
    state: Mutex<GroupState>,
}

pub(super) struct GroupState {
    pub(super) record: WorkgroupRecord,
    pub(super) running: u64,
    pub(super) waiting: VecDeque<Waiter>,
    pub(super) next_waiter: u64,
}

pub(super) struct Waiter {
    pub(super) id: u64,
    pub(super) admit: oneshot::Sender<()>,
}

impl Group {
    pub(super) fn new(record: WorkgroupRecord) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(GroupState {
                record,
                running: 0,
                waiting: VecDeque::new(),
                next_waiter: 0,
            }),
        })
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, GroupState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn release(&self) {
        let mut state = self.lock();
        state.running = state.running.saturating_sub(1);
        state.admit_waiting();
    }
}

impl GroupState {
    /// Gives free slots to the longest-waiting queries still waiting.
    pub(super) fn admit_waiting(&mut self) {
        while self.running < self.record.max_concurrent_queries {
            let Some(waiter) = self.waiting.pop_front() else {
                return;
            };
            // A waiter whose query is gone no longer listens; its slot goes to the next one.
            if waiter.admit.send(()).is_ok() {
                self.running += 1;
            }
        }
    }
}

/// A query's place in its workgroup: the slot is given back when this is dropped (the query's
/// result stream ended or was dropped).
pub struct Slot {
    pub(super) group: Arc<Group>,
    pub(super) limits: WorkgroupLimits,
}

impl Slot {
    /// What the workgroup allows the query.
    pub fn limits(&self) -> &WorkgroupLimits {
        &self.limits
    }
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot")
            .field("limits", &self.limits)
            .finish()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.group.release();
    }
}

/// A query waiting in a queue. Dropped before it was admitted (the client cancelled or went
/// away), it leaves the queue; admitted but dropped before it noticed, it gives the slot back.
pub(super) struct QueuedQuery {
    pub(super) group: Arc<Group>,
    pub(super) id: u64,
    pub(super) admitted: oneshot::Receiver<()>,
    pub(super) done: bool,
}

impl Drop for QueuedQuery {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut state = self.group.lock();
        if let Some(position) = state.waiting.iter().position(|w| w.id == self.id) {
            state.waiting.remove(position);
        } else if self.admitted.try_recv().is_ok() {
            state.running = state.running.saturating_sub(1);
            state.admit_waiting();
        }
    }
}
