//! Governance: who may see and change what (issue 24's first part: roles, privileges and
//! owners). [`Governance`] is the service's [`StatementPolicy`]:
//!
//! - the catalogs a principal plans against and lists hold only what it may see
//!   (`visible`);
//! - every plan it runs is checked for the privileges it needs (`enforce`);
//! - the statements DataFusion does not plan (schemas, `ALTER TABLE`, maintenance) are
//!   checked by [`Governance::authorize`];
//! - its SQL (`statements`) changes the roles, privileges and owners in the catalog
//!   database, and the decisions (`model`) are taken from them in memory, reloaded after each
//!   change, so a grant takes effect at the next statement of every open session.
//!
//! Admins are superusers, and the coordinator itself (no principal) has every right.

mod audit;
mod data_filters;
mod enforce;
mod execute;
mod filter_admin;
mod filter_statements;
mod grants;
mod model;
mod object_names;
mod policy_impl;
mod policy_table;
mod show;
mod statements;
mod tag_statements;
mod tagging;
mod tags;
mod visible;

pub use crate::policy::NameDefaults;
pub use crate::policy::RoleSelection;
pub use enforce::describe;
pub use model::{AccessModel, PUBLIC_ROLE, Privilege};

pub use statements::{GovernanceStatement, NamedObject, parse_governance_statement};

use crate::auth::Principal;
use crate::error::QueryError;
use crate::policy::PolicySubject;
use datafusion::logical_expr::{DdlStatement, LogicalPlan};
use osprey_catalog::{CatalogError, CatalogStore, Grantee, PrivilegeGrant, SecuredObject, now_ms};
use std::sync::{Arc, RwLock};

/// Roles, privileges and owners, and the policy they make (see the module documentation).
#[derive(Clone)]
pub struct Governance {
    inner: Arc<Inner>,
}

struct Inner {
    store: CatalogStore,
    model: RwLock<Arc<AccessModel>>,
    /// Osprey's own catalog.
    own_catalog: String,
    /// Plans row filters' and masks' expressions.
    planner: data_filters::ExpressionPlanner,
    /// Where decisions are recorded.
    audit: audit::AuditTrail,
}

impl std::fmt::Debug for Governance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Governance").finish_non_exhaustive()
    }
}

/// What a statement that changed the catalog means for owners.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnershipChange {
    /// The principal created it, and owns it.
    Created(SecuredObject),
    /// It was dropped: its owner and privileges go with it.
    Dropped(SecuredObject),
    /// A table renamed: its owner and privileges move with it.
    Renamed(SecuredObject, SecuredObject),
}

/// What a governance statement produced.
pub enum GovernanceResult {
    /// It changed roles, privileges or the session's role (the statement's tag).
    Done(&'static str),
    /// A `SHOW ...` listing.
    Listing(LogicalPlan),
}

fn failed(err: CatalogError) -> QueryError {
    match err {
        CatalogError::AlreadyExists { kind, name } => {
            QueryError::InvalidStatement(format!("{kind} {name} already exists"))
        }
        CatalogError::NotFound { kind, name } => {
            QueryError::NotFound(format!("{kind} {name} does not exist"))
        }
        other => QueryError::CatalogUnavailable(other.to_string()),
    }
}

impl Governance {
    /// The governance of the catalog in `store`, Osprey's own catalog being `own_catalog`.
    pub async fn load(store: CatalogStore, own_catalog: &str) -> Result<Self, QueryError> {
        let records = store.access_records().await.map_err(failed)?;
        Ok(Self {
            inner: Arc::new(Inner {
                audit: audit::AuditTrail::new(store.clone()),
                store,
                model: RwLock::new(Arc::new(AccessModel::new(records, own_catalog))),
                own_catalog: own_catalog.to_string(),
                planner: data_filters::ExpressionPlanner::new(),
            }),
        })
    }

    /// The decisions as of now.
    pub fn model(&self) -> Arc<AccessModel> {
        Arc::clone(&self.inner.model.read().unwrap_or_else(|e| e.into_inner()))
    }

    async fn reload(&self) -> Result<(), QueryError> {
        let records = self.inner.store.access_records().await.map_err(failed)?;
        *self.inner.model.write().unwrap_or_else(|e| e.into_inner()) =
            Arc::new(AccessModel::new(records, &self.inner.own_catalog));
        Ok(())
    }

    /// Grants `SELECT` on the schema `catalog.schema` to every user (`public`), as
    /// `osprey local` does for its TPC-H demo schema. Idempotent.
    pub async fn grant_to_everyone(&self, catalog: &str, schema: &str) -> Result<(), QueryError> {
        let grant = PrivilegeGrant {
            grantee: Grantee::Role(PUBLIC_ROLE.to_string()),
            object: SecuredObject::Schema(catalog.to_string(), schema.to_string()),
            privilege: Privilege::Select.name().to_string(),
            columns: Vec::new(),
            grant_option: false,
            granted_by: "osprey".to_string(),
            granted_at_ms: now_ms(),
        };
        self.inner
            .store
            .put_privilege(&grant)
            .await
            .map_err(failed)?;
        self.reload().await
    }

    /// Records what a statement `principal` ran changed for owners.
    pub async fn record(
        &self,
        principal: Option<&Principal>,
        change: Option<OwnershipChange>,
    ) -> Result<(), QueryError> {
        let store = &self.inner.store;
        match change {
            None => return Ok(()),
            Some(OwnershipChange::Created(object)) => match principal {
                Some(principal) => store.set_owner(&object, &principal.user).await,
                None => return Ok(()),
            },
            Some(OwnershipChange::Dropped(object)) => store.forget_object(&object).await,
            Some(OwnershipChange::Renamed(from, to)) => store.rename_object(&from, &to).await,
        }
        .map_err(failed)?;
        self.reload().await
    }

    /// Whether `subject` holds `USAGE` on the location `name` (an admin always does).
    pub fn holds_usage(&self, subject: &PolicySubject<'_>, name: &str) -> bool {
        let Some(principal) = subject.principal else {
            return true;
        };
        let model = self.model();
        let who = model.subject(principal, subject.role);
        model.allows(
            &who,
            Privilege::Usage,
            &SecuredObject::Location(name.to_string()),
            None,
        )
    }

    /// The latest `limit` access decisions, newest first (`system.audit`).
    pub async fn recent_audit(
        &self,
        limit: usize,
    ) -> Result<Vec<osprey_catalog::AuditRecord>, QueryError> {
        self.inner.store.recent_audit(limit).await.map_err(failed)
    }

    /// Forgets a dropped user's roles, privileges and ownerships.
    pub async fn forget_user(&self, user: &str) -> Result<(), QueryError> {
        self.inner.store.forget_user(user).await.map_err(failed)?;
        self.reload().await
    }

    /// Checks a statement DataFusion does not plan: `needs` ownership (`DROP SCHEMA`,
    /// `ALTER TABLE`, maintenance) or a privilege on `object`, and records the decision.
    pub async fn authorize(
        &self,
        subject: &PolicySubject<'_>,
        action: &str,
        needed: Option<Privilege>,
        object: &SecuredObject,
    ) -> Result<(), QueryError> {
        let Some(principal) = subject.principal else {
            return Ok(());
        };
        let model = self.model();
        let who = model.subject(principal, subject.role);
        let allowed = principal.is_admin
            || match needed {
                Some(privilege) => model.allows(&who, privilege, object, None),
                None => model.owns(&who, object),
            };
        let (outcome, fact) = match needed {
            Some(privilege) => (
                QueryError::PermissionDenied(format!(
                    "permission denied: {} on {}",
                    privilege.name(),
                    describe(object)
                )),
                format!("{} on {}", privilege.name(), describe(object)),
            ),
            None => (
                QueryError::PermissionDenied(format!(
                    "permission denied: {action} {} needs its owner or an admin",
                    describe(object)
                )),
                format!("{action}: owner of {}", describe(object)),
            ),
        };
        let facts = audit::AccessFacts {
            objects: vec![fact],
            ..Default::default()
        };
        let roles = who.roles.iter().cloned().collect();
        match allowed {
            true => {
                self.inner
                    .audit
                    .record(subject, roles, action, facts, Ok(()))
                    .await
            }
            false => {
                let _ = self
                    .inner
                    .audit
                    .record(subject, roles, action, facts, Err(&outcome))
                    .await;
                Err(outcome)
            }
        }
    }
}

/// What `plan` (checked, about to run) changes for owners: a table or view it creates, or one
/// it drops.
pub fn ownership_change(plan: &LogicalPlan, defaults: &NameDefaults) -> Option<OwnershipChange> {
    match plan {
        LogicalPlan::Ddl(DdlStatement::CreateExternalTable(cmd)) => {
            Some(OwnershipChange::Created(defaults.table(&cmd.name)))
        }
        LogicalPlan::Ddl(DdlStatement::CreateMemoryTable(cmd)) => {
            Some(OwnershipChange::Created(defaults.table(&cmd.name)))
        }
        LogicalPlan::Ddl(DdlStatement::CreateView(cmd)) => {
            Some(OwnershipChange::Created(defaults.table(&cmd.name)))
        }
        LogicalPlan::Ddl(DdlStatement::DropTable(cmd)) => {
            Some(OwnershipChange::Dropped(defaults.table(&cmd.name)))
        }
        LogicalPlan::Ddl(DdlStatement::DropView(cmd)) => {
            Some(OwnershipChange::Dropped(defaults.table(&cmd.name)))
        }
        _ => None,
    }
}
