//! The workgroups held in memory: loading them from the configuration and the catalog, which
//! users belong to which, and admitting a user's query into its workgroup's queue.

use super::limits::{
    DEFAULT_MAX_CONCURRENT_QUERIES, DEFAULT_MAX_QUEUED_QUERIES, WorkgroupLimits,
    WorkgroupSetupError, WorkgroupsConfig, check_limits, check_name, default_record,
};
use super::queue::{Group, QueuedQuery, Slot, Waiter};
use crate::error::QueryError;
use osprey_catalog::{CatalogError, CatalogStore, ManagedBy, WorkgroupRecord};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::oneshot;

/// The workgroups and which users belong to them, with each workgroup's queue.
#[derive(Clone)]
pub struct Workgroups {
    pub(super) shared: Arc<Shared>,
}

pub(super) struct Shared {
    pub(super) store: CatalogStore,
    default_name: String,
    registry: Mutex<Registry>,
}

#[derive(Default)]
struct Registry {
    groups: HashMap<String, Arc<Group>>,
    /// User name to workgroup name, for users not in the default workgroup.
    users: HashMap<String, String>,
}

/// A workgroup as `SHOW WORKGROUPS` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkgroupStatus {
    /// Its definition.
    pub record: WorkgroupRecord,
    /// Whether it is the default workgroup.
    pub is_default: bool,
    /// Its queries running now.
    pub running: u64,
    /// Its queries waiting now.
    pub queued: u64,
}

impl Workgroups {
    /// Stores the configured workgroups (creating, updating, and dropping those removed from
    /// the configuration), makes sure the default workgroup exists, and loads every workgroup
    /// and user assignment.
    pub async fn load(
        store: CatalogStore,
        config: &WorkgroupsConfig,
    ) -> Result<Self, WorkgroupSetupError> {
        check_name(&config.default_workgroup).map_err(WorkgroupSetupError::Invalid)?;
        let stored = store.workgroups().await?;
        for configured in &config.workgroups {
            check_name(&configured.name).map_err(WorkgroupSetupError::Invalid)?;
            let mut record = default_record(&configured.name, ManagedBy::Config);
            record.max_concurrent_queries = configured
                .max_concurrent_queries
                .unwrap_or(DEFAULT_MAX_CONCURRENT_QUERIES);
            record.max_queued_queries = configured
                .max_queued_queries
                .unwrap_or(DEFAULT_MAX_QUEUED_QUERIES);
            record.query_timeout_secs = configured.query_timeout_secs;
            record.max_scan_bytes = configured.max_scan_bytes;
            record.query_memory_bytes = configured.query_memory_bytes;
            check_limits(&record).map_err(WorkgroupSetupError::Invalid)?;
            match stored.iter().find(|s| s.name == record.name) {
                Some(existing) => {
                    record.created_at_ms = existing.created_at_ms;
                    record.updated_at_ms = existing.updated_at_ms;
                    if *existing != record {
                        store.update_workgroup(&record).await?;
                    }
                }
                None => store.create_workgroup(&record).await?,
            }
            for user in &configured.users {
                match store.set_user_workgroup(user, Some(&record.name)).await {
                    Ok(()) => {}
                    Err(CatalogError::NotFound { .. }) => {
                        tracing::warn!(user = %user, workgroup = %record.name, "a user listed in [[workgroups]] does not exist")
                    }
                    Err(err) => return Err(err.into()),
                }
            }
        }
        for existing in &stored {
            if existing.managed_by == ManagedBy::Config
                && !config.workgroups.iter().any(|c| c.name == existing.name)
            {
                store.drop_workgroup(&existing.name).await?;
                tracing::info!(workgroup = %existing.name, "workgroup removed from the configuration: dropped");
            }
        }
        if !store
            .workgroups()
            .await?
            .iter()
            .any(|w| w.name == config.default_workgroup)
        {
            store
                .create_workgroup(&default_record(&config.default_workgroup, ManagedBy::Sql))
                .await?;
        }
        let workgroups = Self {
            shared: Arc::new(Shared {
                store,
                default_name: config.default_workgroup.clone(),
                registry: Mutex::new(Registry::default()),
            }),
        };
        workgroups.reload().await?;
        Ok(workgroups)
    }

    /// Reads every workgroup and assignment from the catalog (limits of existing workgroups are
    /// updated in place, so queries waiting in them follow).
    pub(super) async fn reload(&self) -> Result<(), CatalogError> {
        let records = self.shared.store.workgroups().await?;
        let users = self.shared.store.users().await?;
        let mut registry = self.registry();
        let mut groups = HashMap::new();
        for record in records {
            let group = match registry.groups.remove(&record.name) {
                Some(group) => {
                    let mut state = group.lock();
                    state.record = record.clone();
                    state.admit_waiting();
                    drop(state);
                    group
                }
                None => Group::new(record.clone()),
            };
            groups.insert(record.name, group);
        }
        registry.groups = groups;
        registry.users = users
            .into_iter()
            .filter_map(|user| user.workgroup.map(|workgroup| (user.name, workgroup)))
            .collect();
        Ok(())
    }

    fn registry(&self) -> MutexGuard<'_, Registry> {
        self.shared
            .registry
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The default workgroup's name.
    pub fn default_name(&self) -> &str {
        &self.shared.default_name
    }

    /// Whether a workgroup called `name` exists.
    pub fn exists(&self, name: &str) -> bool {
        self.registry().groups.contains_key(name)
    }

    /// The name of the workgroup `user`'s queries run in.
    pub fn workgroup_of(&self, user: &str) -> String {
        self.group_of(user).lock().record.name.clone()
    }

    fn group_of(&self, user: &str) -> Arc<Group> {
        let registry = self.registry();
        let named = registry
            .users
            .get(user)
            .and_then(|name| registry.groups.get(name));
        match named.or_else(|| registry.groups.get(&self.shared.default_name)) {
            Some(group) => Arc::clone(group),
            // The default workgroup is made at start and cannot be dropped; should it be
            // missing anyway, queries run under the defaults rather than fail.
            None => Group::new(default_record(&self.shared.default_name, ManagedBy::Sql)),
        }
    }

    /// Takes a slot in `user`'s workgroup: at once if one is free and nobody waits, after the
    /// queries ahead in the queue otherwise (`on_queued` is called when the query starts to
    /// wait). A full queue refuses the query at once with [`QueryError::QueueFull`]. Dropping
    /// the future leaves the queue.
    pub async fn admit(&self, user: &str, on_queued: impl FnOnce()) -> Result<Slot, QueryError> {
        let group = self.group_of(user);
        let (id, admitted) = {
            let mut state = group.lock();
            if state.waiting.is_empty() && state.running < state.record.max_concurrent_queries {
                state.running += 1;
                let limits = WorkgroupLimits::of(&state.record);
                drop(state);
                return Ok(Slot { group, limits });
            }
            let record = &state.record;
            if state.waiting.len() as u64 >= record.max_queued_queries {
                return Err(QueryError::QueueFull(format!(
                    "workgroup {name} is at its limit: {running} queries running (at most {max}) \
                     and {queued} waiting (at most {max_queued}); the query was not run. Try \
                     again shortly, or ask an admin to raise the limits: ALTER WORKGROUP {name} \
                     SET (max_queued_queries = ...)",
                    name = record.name,
                    running = state.running,
                    max = record.max_concurrent_queries,
                    queued = state.waiting.len(),
                    max_queued = record.max_queued_queries,
                )));
            }
            let id = state.next_waiter;
            state.next_waiter += 1;
            let (admit, admitted) = oneshot::channel();
            state.waiting.push_back(Waiter { id, admit });
            (id, admitted)
        };
        on_queued();
        let mut queued = QueuedQuery {
            group: Arc::clone(&group),
            id,
            admitted,
            done: false,
        };
        let outcome = (&mut queued.admitted).await;
        queued.done = true;
        match outcome {
            Ok(()) => {
                let limits = WorkgroupLimits::of(&group.lock().record);
                Ok(Slot { group, limits })
            }
            // Senders are dropped only with the queue entry, which only this query removes.
            Err(_) => Err(QueryError::Execution(
                "the workgroup's queue was dropped while the query waited".to_string(),
            )),
        }
    }

    /// Every workgroup with its queue, by name.
    pub fn status(&self) -> Vec<WorkgroupStatus> {
        let groups: Vec<Arc<Group>> = self.registry().groups.values().cloned().collect();
        let mut status: Vec<WorkgroupStatus> = groups
            .iter()
            .map(|group| {
                let state = group.lock();
                WorkgroupStatus {
                    is_default: state.record.name == self.shared.default_name,
                    record: state.record.clone(),
                    running: state.running,
                    queued: state.waiting.len() as u64,
                }
            })
            .collect();
        status.sort_by(|a, b| a.record.name.cmp(&b.record.name));
        status
    }

    /// Puts `user`'s queries in `workgroup` (`None`: the default), in the catalog and here.
    pub async fn assign_user(&self, user: &str, workgroup: Option<&str>) -> Result<(), QueryError> {
        if let Some(name) = workgroup {
            self.require(name)?;
        }
        self.shared
            .store
            .set_user_workgroup(user, workgroup)
            .await
            .map_err(catalog)?;
        let mut registry = self.registry();
        match workgroup {
            Some(name) => registry.users.insert(user.to_string(), name.to_string()),
            None => registry.users.remove(user),
        };
        Ok(())
    }

    /// Forgets a dropped user's assignment.
    pub fn forget_user(&self, user: &str) {
        self.registry().users.remove(user);
    }

    /// An error unless workgroup `name` exists.
    pub fn require(&self, name: &str) -> Result<(), QueryError> {
        if self.exists(name) {
            Ok(())
        } else {
            Err(QueryError::InvalidStatement(format!(
                "workgroup {name} does not exist; SHOW WORKGROUPS lists them"
            )))
        }
    }

    pub(super) fn record(&self, name: &str) -> Option<WorkgroupRecord> {
        let group = self.registry().groups.get(name).cloned()?;
        let record = group.lock().record.clone();
        Some(record)
    }
}

pub(super) fn catalog(err: CatalogError) -> QueryError {
    match err {
        CatalogError::AlreadyExists { .. } | CatalogError::NotFound { .. } => {
            QueryError::InvalidStatement(err.to_string())
        }
        other => QueryError::Execution(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(max_concurrent: u64, max_queued: u64) -> Arc<Group> {
        let mut record = default_record("test", ManagedBy::Sql);
        record.max_concurrent_queries = max_concurrent;
        record.max_queued_queries = max_queued;
        Group::new(record)
    }

    #[tokio::test]
    async fn queues_are_fifo_bounded_and_leave_on_drop() {
        let store = CatalogStore::open("sqlite::memory:").await.unwrap();
        let workgroups = Workgroups {
            shared: Arc::new(Shared {
                store,
                default_name: "test".into(),
                registry: Mutex::new(Registry::default()),
            }),
        };
        let test_group = group(1, 2);
        workgroups
            .registry()
            .groups
            .insert("test".into(), Arc::clone(&test_group));
        let first = workgroups.admit("a", || {}).await.unwrap();
        let queued = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let waiter = |order: u64| {
            let workgroups = workgroups.clone();
            let queued = Arc::clone(&queued);
            tokio::spawn(async move {
                let slot = workgroups
                    .admit("a", || {
                        queued.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    })
                    .await
                    .unwrap();
                (order, slot)
            })
        };
        let second = waiter(2);
        while queued.load(std::sync::atomic::Ordering::SeqCst) < 1 {
            tokio::task::yield_now().await;
        }
        let third = waiter(3);
        while queued.load(std::sync::atomic::Ordering::SeqCst) < 2 {
            tokio::task::yield_now().await;
        }
        assert!(matches!(
            workgroups.admit("a", || {}).await,
            Err(QueryError::QueueFull(_))
        ));
        drop(first);
        let (order, slot) = second.await.unwrap();
        assert_eq!(order, 2);
        assert_eq!(test_group.lock().waiting.len(), 1);
        drop(slot);
        let (order, slot) = third.await.unwrap();
        assert_eq!(order, 3);
        // A waiter that goes away leaves the queue and takes no slot.
        let abandoned = waiter(4);
        while queued.load(std::sync::atomic::Ordering::SeqCst) < 3 {
            tokio::task::yield_now().await;
        }
        abandoned.abort();
        let _ = abandoned.await;
        assert_eq!(test_group.lock().waiting.len(), 0);
        drop(slot);
        assert_eq!(test_group.lock().running, 0);
    }
}
