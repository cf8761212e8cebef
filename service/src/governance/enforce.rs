//! What a plan needs, checked for a principal who is not an admin.
//!
//! Every catalog table in the plan of such a principal came through its filtered catalogs
//! as a [`GovernedTable`] (see `visible`), so the uses checked here are every use:
//!
//! - a scan needs `SELECT` on the columns it reads (found with DataFusion's own projection
//!   pruning on a copy of the plan; a scan in a subquery needs every column);
//! - a write needs `INSERT` (`INSERT OVERWRITE` also `DELETE`), `DELETE` (`DELETE`,
//!   `TRUNCATE`), `UPDATE`, or for `MERGE` each privilege its clauses use and `SELECT` on the
//!   target (matching reads it); the rows it reads need `SELECT` as any scan;
//! - `CREATE TABLE | VIEW` needs `CREATE` on the schema; `DROP` needs ownership.
//!
//! Then the marks are taken off: the plan that runs holds the tables themselves.

use super::audit::AccessFacts;
use super::data_filters::{self, ExpressionPlanner};
use super::model::{AccessModel, Privilege, Subject};
use super::visible::GovernedTable;
use crate::error::QueryError;
use crate::policy::NameDefaults;
use datafusion::common::TableReference;
use datafusion::common::tree_node::{Transformed, TreeNodeRecursion};
use datafusion::datasource::{provider_as_source, source_as_provider};
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{
    DdlStatement, DmlStatement, LogicalPlan, MergeIntoAction, TableScan, TableSource, WriteOp,
};
use datafusion::optimizer::optimize_projections::OptimizeProjections;
use datafusion::optimizer::{OptimizerContext, OptimizerRule};
use osprey_catalog::SecuredObject;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The schema that holds `table`.
pub fn schema_of(table: &SecuredObject) -> SecuredObject {
    match table {
        SecuredObject::Table(c, s, _) => SecuredObject::Schema(c.clone(), s.clone()),
        other => other.clone(),
    }
}

/// One thing a plan needs.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Need {
    /// A privilege on an object; for `SELECT`, of these columns (`None`: all).
    Privilege(Privilege, SecuredObject, Option<Vec<String>>),
    /// Ownership, to drop it.
    Owner(&'static str, SecuredObject),
}

/// Checks `plan` for `subject`, and answers it with its tables unmarked, and the row filters
/// and column masks that apply to `subject` put over their scans (`data_filters`); with what
/// was checked and applied, for the audit trail, whatever the answer.
pub(super) fn check(
    model: &AccessModel,
    planner: &ExpressionPlanner,
    subject: &Subject,
    defaults: &NameDefaults,
    plan: LogicalPlan,
) -> (Result<LogicalPlan, QueryError>, AccessFacts) {
    let facts = RefCell::new(AccessFacts::default());
    let checked = check_gathering(model, planner, subject, defaults, plan, &facts);
    (checked, facts.into_inner())
}

fn check_gathering(
    model: &AccessModel,
    planner: &ExpressionPlanner,
    subject: &Subject,
    defaults: &NameDefaults,
    plan: LogicalPlan,
    facts: &RefCell<AccessFacts>,
) -> Result<LogicalPlan, QueryError> {
    for need in needs(&plan, defaults)? {
        facts.borrow_mut().objects.push(need_text(&need));
        let allowed = match &need {
            Need::Privilege(privilege, object, columns) => {
                model.allows(subject, *privilege, object, columns.as_deref())
            }
            Need::Owner(_, object) => model.owns(subject, object),
        };
        if !allowed {
            return Err(denied(&need));
        }
    }
    refuse_filtered_changes(model, subject, &plan)?;
    let analyzed = matches!(plan, LogicalPlan::Analyze(_));
    unmark(plan, &|object, scan| {
        let columns = data_filters::column_names(&scan.source.schema());
        let policy = data_filters::scan_policy(model, subject, object, &columns)?;
        if policy.is_empty() {
            return Ok(None);
        }
        // Its metrics count what each operator read, hidden rows included.
        if analyzed {
            return Err(QueryError::PermissionDenied(format!(
                "permission denied: EXPLAIN ANALYZE reads {}, where a row filter or column \
                 mask applies to you; its metrics would count what they hide. Use EXPLAIN",
                describe(object)
            )));
        }
        let mut facts = facts.borrow_mut();
        for filter in policy.rows.iter().flatten() {
            facts
                .filters
                .push(format!("{} on {}", filter.name, describe(object)));
        }
        for (column, mask) in &policy.masks {
            facts
                .masks
                .push(format!("{} on {} ({column})", mask.name, describe(object)));
        }
        data_filters::apply(planner, subject, &policy, scan).map(Some)
    })
}

/// A need as the audit trail shows it: `SELECT (a, b) on table c.s.t`, `owner of table ...`.
fn need_text(need: &Need) -> String {
    match need {
        Need::Privilege(privilege, object, Some(columns))
            if *privilege == Privilege::Select && !columns.is_empty() =>
        {
            format!("SELECT ({}) on {}", columns.join(", "), describe(object))
        }
        Need::Privilege(privilege, object, _) => {
            format!("{} on {}", privilege.name(), describe(object))
        }
        Need::Owner(action, object) => format!("{action}: owner of {}", describe(object)),
    }
}

/// What a plan of an admin reads and changes, for the audit trail: every table its scans
/// and writes name, and what its DDL creates or drops.
pub(super) fn admin_facts(plan: &LogicalPlan, defaults: &NameDefaults) -> AccessFacts {
    let mut objects: Vec<String> = Vec::new();
    let mut add = |text: String| {
        if !objects.contains(&text) {
            objects.push(text);
        }
    };
    let _ = plan.apply_with_subqueries(|node| {
        match node {
            LogicalPlan::TableScan(scan) => add(format!(
                "SELECT on {}",
                describe(&defaults.table(&scan.table_name))
            )),
            LogicalPlan::Dml(dml) => add(format!(
                "{} on {}",
                dml.op.name(),
                describe(&defaults.table(&dml.table_name))
            )),
            LogicalPlan::Ddl(ddl) => add(ddl.name().to_string()),
            _ => {}
        }
        Ok(TreeNodeRecursion::Continue)
    });
    AccessFacts {
        objects,
        ..AccessFacts::default()
    }
}

/// Refuses what row filters and masks cannot narrow for `subject`: a change other than an
/// append to a table they apply to (it would touch rows or values `subject` cannot see), and
/// a metadata table of such a table (its files' statistics tell hidden values).
fn refuse_filtered_changes(
    model: &AccessModel,
    subject: &Subject,
    plan: &LogicalPlan,
) -> Result<(), QueryError> {
    let narrowed = |source: &Arc<dyn TableSource>| -> Result<Option<SecuredObject>, QueryError> {
        let Some((object, inner)) = governed(source) else {
            return Ok(None);
        };
        let columns = data_filters::column_names(&inner.schema());
        // A metadata table's columns are not the table's: any filter or mask on the table
        // narrows it.
        let applies = !data_filters::scan_policy(model, subject, &object, &columns)?.is_empty()
            || (is_metadata(source)
                && !data_filters::scan_policy(model, subject, &object, &[])?.is_empty());
        Ok(applies.then_some(object))
    };
    // The writes and metadata scans in the plan, then each checked.
    let mut uses: Vec<(Arc<dyn TableSource>, Option<String>, String)> = Vec::new();
    plan.apply_with_subqueries(|node| {
        match node {
            LogicalPlan::Dml(dml) if dml.op != WriteOp::Insert(InsertOp::Append) => uses.push((
                Arc::clone(&dml.target),
                Some(dml.op.name().to_string()),
                String::new(),
            )),
            LogicalPlan::TableScan(scan) if is_metadata(&scan.source) => {
                uses.push((Arc::clone(&scan.source), None, scan.table_name.to_string()))
            }
            _ => {}
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    for (source, write, name) in uses {
        let Some(object) = narrowed(&source)? else {
            continue;
        };
        return Err(QueryError::PermissionDenied(match write {
            Some(write) => format!(
                "permission denied: {write} on {}: a row filter or column mask applies to you \
                 there, so only INSERT is allowed",
                describe(&object)
            ),
            None => format!(
                "permission denied: {name} is a metadata table of {}, where a row filter or \
                 column mask applies to you",
                describe(&object)
            ),
        }));
    }
    Ok(())
}

fn is_metadata(source: &Arc<dyn TableSource>) -> bool {
    source_as_provider(source)
        .ok()
        .and_then(|p| {
            p.as_ref()
                .downcast_ref::<GovernedTable>()
                .map(|t| t.metadata)
        })
        .unwrap_or(false)
}

fn denied(need: &Need) -> QueryError {
    let message = match need {
        // The privilege as the audit trail names it (`need_text`).
        Need::Privilege(..) => format!("permission denied: {}", need_text(need)),
        Need::Owner(action, object) => format!(
            "permission denied: {action} {} needs its owner or an admin",
            describe(object)
        ),
    };
    QueryError::PermissionDenied(message)
}

/// `table c.s.t`, `schema c.s`, `catalog c`.
pub fn describe(object: &SecuredObject) -> String {
    match object {
        SecuredObject::Catalog(c) => format!("catalog {c}"),
        SecuredObject::Schema(c, s) => format!("schema {c}.{s}"),
        SecuredObject::Table(c, s, t) => format!("table {c}.{s}.{t}"),
        SecuredObject::Location(name) => format!("location {name}"),
        SecuredObject::Tagged(expression) => format!("tagged {expression}"),
    }
}

/// The marked table a plan's `source` is, as (which table, the table itself).
fn governed(
    source: &Arc<dyn TableSource>,
) -> Option<(SecuredObject, Arc<dyn datafusion::catalog::TableProvider>)> {
    let provider = source_as_provider(source).ok()?;
    let table = provider.as_ref().downcast_ref::<GovernedTable>()?;
    Some((table.object.clone(), Arc::clone(&table.inner)))
}

/// What `plan` needs.
fn needs(plan: &LogicalPlan, defaults: &NameDefaults) -> Result<Vec<Need>, QueryError> {
    let mut needs = Vec::new();
    // The columns each scan reads, from a copy pruned as the optimizer would prune it.
    let pruned = OptimizeProjections::new()
        .rewrite(plan.clone(), &OptimizerContext::new())
        .map(|t| t.data)
        .unwrap_or_else(|_| plan.clone());
    let mut reads: BTreeMap<SecuredObject, Option<Vec<String>>> = BTreeMap::new();
    pruned.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node
            && let Some((object, _)) = governed(&scan.source)
        {
            let columns = scan_columns(scan);
            let entry = reads.entry(object).or_insert_with(|| Some(Vec::new()));
            match (entry.as_mut(), columns) {
                (Some(all), Some(columns)) => {
                    for column in columns {
                        if !all.contains(&column) {
                            all.push(column);
                        }
                    }
                }
                _ => *entry = None,
            }
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    for (object, columns) in reads {
        needs.push(Need::Privilege(Privilege::Select, object, columns));
    }
    plan.apply_with_subqueries(|node| {
        match node {
            LogicalPlan::Dml(dml) => needs.extend(write_needs(dml, defaults)),
            LogicalPlan::Ddl(ddl) => needs.extend(ddl_needs(ddl, defaults)),
            _ => {}
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    Ok(needs)
}

/// The columns `scan` reads: `Some(vec![])` for none (`count(*)`).
fn scan_columns(scan: &TableScan) -> Option<Vec<String>> {
    let schema = scan.source.schema();
    let names = |indices: &[usize]| {
        indices
            .iter()
            .map(|i| schema.field(*i).name().clone())
            .collect::<Vec<_>>()
    };
    match &scan.projection {
        Some(projection) => Some(names(projection)),
        None => Some(names(&(0..schema.fields().len()).collect::<Vec<_>>())),
    }
}

fn write_needs(dml: &DmlStatement, defaults: &NameDefaults) -> Vec<Need> {
    let target = governed(&dml.target).map(|(object, _)| object);
    let privileges: Vec<Privilege> = match &dml.op {
        WriteOp::Insert(InsertOp::Append) => vec![Privilege::Insert],
        WriteOp::Insert(_) => vec![Privilege::Insert, Privilege::Delete],
        WriteOp::Delete | WriteOp::Truncate => vec![Privilege::Delete],
        WriteOp::Update => vec![Privilege::Update],
        WriteOp::MergeInto(merge) => {
            let mut used: Vec<Privilege> = merge
                .clauses
                .iter()
                .map(|clause| match clause.action {
                    MergeIntoAction::Update(_) => Privilege::Update,
                    MergeIntoAction::Insert { .. } => Privilege::Insert,
                    MergeIntoAction::Delete => Privilege::Delete,
                })
                .collect();
            // Which target rows match tells what the target holds: a MERGE reads it.
            used.push(Privilege::Select);
            used.sort();
            used.dedup();
            used
        }
        WriteOp::Ctas => {
            return vec![Need::Privilege(
                Privilege::Create,
                schema_of(&defaults.table(&dml.table_name)),
                None,
            )];
        }
        // A write Osprey does not know yet is the admins'.
        _ => {
            return vec![Need::Owner(
                "running",
                SecuredObject::Catalog(format!("(for {})", dml.op.name())),
            )];
        }
    };
    match target {
        Some(object) => privileges
            .into_iter()
            .map(|p| Need::Privilege(p, object.clone(), None))
            .collect(),
        None => Vec::new(),
    }
}

fn ddl_needs(ddl: &DdlStatement, defaults: &NameDefaults) -> Vec<Need> {
    let create_in = |name: &TableReference| {
        vec![Need::Privilege(
            Privilege::Create,
            schema_of(&defaults.table(name)),
            None,
        )]
    };
    // Replacing drops what was there: the owner's (or the schema owner's) to do.
    let replacing = |name: &TableReference, or_replace: bool| {
        let mut needs = create_in(name);
        if or_replace {
            needs.push(Need::Owner("CREATE OR REPLACE", defaults.table(name)));
        }
        needs
    };
    match ddl {
        DdlStatement::CreateExternalTable(cmd) => replacing(&cmd.name, cmd.or_replace),
        DdlStatement::CreateMemoryTable(cmd) => replacing(&cmd.name, cmd.or_replace),
        DdlStatement::CreateView(cmd) => replacing(&cmd.name, cmd.or_replace),
        DdlStatement::DropTable(cmd) => vec![Need::Owner("DROP", defaults.table(&cmd.name))],
        DdlStatement::DropView(cmd) => vec![Need::Owner("DROP", defaults.table(&cmd.name))],
        DdlStatement::CreateCatalogSchema(cmd) => {
            let schema = defaults.schema(&cmd.schema_name);
            let SecuredObject::Schema(catalog, _) = &schema else {
                return Vec::new();
            };
            vec![Need::Privilege(
                Privilege::Create,
                SecuredObject::Catalog(catalog.clone()),
                None,
            )]
        }
        DdlStatement::DropCatalogSchema(cmd) => {
            vec![Need::Owner("DROP", defaults.schema(&cmd.name.to_string()))]
        }
        // Catalogs, functions and indexes are the admins'.
        other => vec![Need::Owner(
            "running",
            SecuredObject::Catalog(format!("(for {})", other.name())),
        )],
    }
}

/// A scan's replacement, given its table and the scan of the table itself: `None` keeps
/// the scan.
type ScanRewrite<'a> =
    dyn Fn(&SecuredObject, TableScan) -> Result<Option<LogicalPlan>, QueryError> + 'a;

/// `plan` with every marked table replaced by the table itself, and each scan of one by what
/// `rewrite` makes of it. The plans above a rewritten scan have their schemas recomputed (a
/// masked column may hold nulls where the column held none).
fn unmark(plan: LogicalPlan, rewrite: &ScanRewrite<'_>) -> Result<LogicalPlan, QueryError> {
    let mut rewritten = false;
    let plan = plan
        .transform_up_with_subqueries(|node| match node {
            LogicalPlan::TableScan(mut scan) => match governed(&scan.source) {
                Some((object, inner)) => {
                    scan.source = provider_as_source(inner);
                    match rewrite(&object, scan.clone()) {
                        Ok(Some(plan)) => {
                            rewritten = true;
                            Ok(Transformed::yes(plan))
                        }
                        Ok(None) => Ok(Transformed::yes(LogicalPlan::TableScan(scan))),
                        Err(err) => {
                            Err(datafusion::error::DataFusionError::External(Box::new(err)))
                        }
                    }
                }
                None => Ok(Transformed::no(LogicalPlan::TableScan(scan))),
            },
            LogicalPlan::Dml(mut dml) => match governed(&dml.target) {
                Some((_, inner)) => {
                    dml.target = provider_as_source(inner);
                    Ok(Transformed::yes(LogicalPlan::Dml(dml)))
                }
                None => Ok(Transformed::no(LogicalPlan::Dml(dml))),
            },
            other => Ok(Transformed::no(other)),
        })?
        .data;
    if !rewritten {
        return Ok(plan);
    }
    Ok(plan
        .transform_up_with_subqueries(|node| node.recompute_schema().map(Transformed::yes))?
        .data)
}
