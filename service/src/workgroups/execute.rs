//! Running a parsed workgroup statement: the admin check, the catalog change, and reloading
//! the workgroups held in memory.

use super::admission::{Workgroups, catalog};
use super::limits::{check_limits, default_record};
use super::listing::listing;
use super::statement::WorkgroupStatement;
use crate::error::QueryError;
use datafusion::logical_expr::LogicalPlan;
use osprey_catalog::ManagedBy;

/// What a workgroup statement produced.
#[derive(Debug)]
pub enum WorkgroupStatementResult {
    /// The change is made.
    Done,
    /// `SHOW WORKGROUPS`: a plan over the listed workgroups.
    Listing(LogicalPlan),
}

/// Runs a workgroup statement; `is_admin` says whether the caller may change workgroups.
pub async fn execute_workgroup_statement(
    workgroups: &Workgroups,
    is_admin: bool,
    statement: WorkgroupStatement,
) -> Result<WorkgroupStatementResult, QueryError> {
    let store = &workgroups.shared.store;
    let require_admin = |what: &str| {
        if is_admin {
            Ok(())
        } else {
            Err(QueryError::PermissionDenied(format!(
                "{what} needs an admin; ask one to run it"
            )))
        }
    };
    match statement {
        WorkgroupStatement::Show => {
            return Ok(WorkgroupStatementResult::Listing(listing(
                &workgroups.status(),
            )?));
        }
        WorkgroupStatement::Create {
            name,
            if_not_exists,
            settings,
        } => {
            require_admin("CREATE WORKGROUP")?;
            if workgroups.exists(&name) {
                if if_not_exists {
                    return Ok(WorkgroupStatementResult::Done);
                }
                return Err(QueryError::InvalidStatement(format!(
                    "workgroup {name} already exists; ALTER WORKGROUP changes it"
                )));
            }
            let mut record = default_record(&name, ManagedBy::Sql);
            for (setting, value) in settings {
                setting.apply(&mut record, value)?;
            }
            check_limits(&record).map_err(QueryError::InvalidStatement)?;
            store.create_workgroup(&record).await.map_err(catalog)?;
            tracing::info!(workgroup = %name, "workgroup created");
        }
        WorkgroupStatement::Alter {
            name,
            if_exists,
            settings,
        } => {
            require_admin("ALTER WORKGROUP")?;
            let Some(mut record) = workgroups.record(&name) else {
                if if_exists {
                    return Ok(WorkgroupStatementResult::Done);
                }
                return Err(not_found(&name));
            };
            if record.managed_by == ManagedBy::Config {
                return Err(configured(&name));
            }
            for (setting, value) in settings {
                setting.apply(&mut record, value)?;
            }
            check_limits(&record).map_err(QueryError::InvalidStatement)?;
            store.update_workgroup(&record).await.map_err(catalog)?;
            tracing::info!(workgroup = %name, "workgroup changed");
        }
        WorkgroupStatement::Drop { names, if_exists } => {
            require_admin("DROP WORKGROUP")?;
            for name in names {
                let Some(record) = workgroups.record(&name) else {
                    if if_exists {
                        continue;
                    }
                    return Err(not_found(&name));
                };
                if name == workgroups.default_name() {
                    return Err(QueryError::InvalidStatement(format!(
                        "{name} is the default workgroup and cannot be dropped (the \
                         coordinator's default_workgroup names it)"
                    )));
                }
                if record.managed_by == ManagedBy::Config {
                    return Err(configured(&name));
                }
                store.drop_workgroup(&name).await.map_err(catalog)?;
                tracing::info!(workgroup = %name, "workgroup dropped; its users went to the default workgroup");
            }
        }
    }
    workgroups.reload().await.map_err(catalog)?;
    Ok(WorkgroupStatementResult::Done)
}

fn not_found(name: &str) -> QueryError {
    QueryError::InvalidStatement(format!(
        "workgroup {name} does not exist; SHOW WORKGROUPS lists them"
    ))
}

fn configured(name: &str) -> QueryError {
    QueryError::InvalidStatement(format!(
        "workgroup {name} is defined in the coordinator's configuration ([[workgroups]]): \
         change it there and restart"
    ))
}
