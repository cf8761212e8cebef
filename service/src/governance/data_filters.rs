//! Row filters and column masks: which apply to a principal's read of a table, and the plan
//! that applies them, directly over the table's scan, before optimization. The filtered and
//! masked scan is part of the logical plan, so it travels inside the distributed plan to
//! every executor, and statistics of the files never answer for hidden rows (a `Filter` makes
//! them inexact).
//!
//! What applies, as Lake Formation combines data filters:
//!
//! - each of a principal's readers of a table (its user if it owns the table, and each of its
//!   roles, `public` included, that holds `SELECT` on it) gives the rows its row filters pass,
//!   or every row if it has none; the principal sees the union;
//! - a column is masked if every reader that gives it has a mask on it: one mask applies, and
//!   two different ones refuse the read (`SET ROLE` chooses); a reader without a mask on it
//!   gives the value;
//! - filters see the stored values: a filter on a masked column compares the real value,
//!   and the mask applies to what the filter lets through.
//!
//! Expressions are planned against the table's columns each time they apply, with the
//! session's `current_user`, `current_role` and `is_role_in_session('r')` replaced by their
//! values for the principal.

use super::model::{AccessModel, Subject};
use super::policy_table::PolicyTable;
use crate::error::QueryError;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::datasource::{provider_as_source, source_as_provider};
use datafusion::execution::context::SessionState;
use datafusion::execution::{FunctionRegistry, SessionStateBuilder};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ExprSchemable, LogicalPlan, ScalarUDF, TableScan, TableScanBuilder,
    Volatility, create_udf, lit,
};
use datafusion::prelude::or;
use osprey_catalog::{DataFilter, DataFilterKind, Grantee, SecuredObject};
use std::collections::BTreeSet;
use std::sync::Arc;

/// The session functions row filters and masks may call; each is replaced by its value for
/// the principal before the plan runs.
const CURRENT_USER: &str = "current_user";
const CURRENT_ROLE: &str = "current_role";
const IS_ROLE_IN_SESSION: &str = "is_role_in_session";

/// What applies to one principal's read of one table.
#[derive(Debug, Default)]
pub(super) struct ScanPolicy<'a> {
    /// The row filters of which a row must pass one; `None`: every row is seen.
    pub rows: Option<Vec<&'a DataFilter>>,
    /// The masked columns, each with its mask.
    pub masks: Vec<(String, &'a DataFilter)>,
}

impl ScanPolicy<'_> {
    /// Whether nothing applies.
    pub fn is_empty(&self) -> bool {
        self.rows.is_none() && self.masks.is_empty()
    }
}

/// What applies to `subject`'s read of `table`, whose columns are `columns`.
pub(super) fn scan_policy<'a>(
    model: &'a AccessModel,
    subject: &Subject,
    table: &SecuredObject,
    columns: &[String],
) -> Result<ScanPolicy<'a>, QueryError> {
    let on_table: Vec<&DataFilter> = model
        .data_filters()
        .iter()
        .filter(|f| f.table == *table)
        .collect();
    if subject.admin || on_table.is_empty() {
        return Ok(ScanPolicy::default());
    }
    let readers = model.readers(subject, table);
    let of = |reader: &Grantee, kind: DataFilterKind| -> Vec<&'a DataFilter> {
        on_table
            .iter()
            .copied()
            .filter(|f| f.kind == kind && f.grantee == *reader)
            .collect()
    };
    let mut rows: Option<Vec<&DataFilter>> = Some(Vec::new());
    for (reader, _) in &readers {
        let filters = of(reader, DataFilterKind::RowFilter);
        match (rows.as_mut(), filters.is_empty()) {
            (_, true) => rows = None,
            (Some(all), false) => all.extend(filters),
            (None, false) => {}
        }
    }
    // No reader (a schema every user reads): nothing narrows it.
    if readers.is_empty() {
        rows = None;
    }
    let mut masks = Vec::new();
    for column in columns {
        let giving: Vec<&Grantee> = readers
            .iter()
            .filter(|(_, scope)| scope.contains(column))
            .map(|(g, _)| g)
            .collect();
        let mut applying: Vec<&DataFilter> = Vec::new();
        let mut unmasked = giving.is_empty();
        for reader in giving {
            let mask = of(reader, DataFilterKind::ColumnMask)
                .into_iter()
                .find(|m| m.column.as_deref() == Some(column.as_str()));
            match mask {
                Some(mask) if !applying.iter().any(|m| m.name == mask.name) => applying.push(mask),
                Some(_) => {}
                None => unmasked = true,
            }
        }
        match (unmasked, applying.as_slice()) {
            (true, _) | (false, []) => {}
            (false, [mask]) => masks.push((column.clone(), *mask)),
            (false, several) => {
                let names: Vec<&str> = several.iter().map(|m| m.name.as_str()).collect();
                return Err(QueryError::PermissionDenied(format!(
                    "permission denied: column {column} of {} has several masks for your roles \
                     ({}); choose one role with SET ROLE",
                    super::describe(table),
                    names.join(", ")
                )));
            }
        }
    }
    Ok(ScanPolicy { rows, masks })
}

/// Plans the expressions of row filters and masks: DataFusion's functions, and the session
/// functions as placeholders replaced per principal.
pub(super) struct ExpressionPlanner {
    state: SessionState,
}

impl std::fmt::Debug for ExpressionPlanner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExpressionPlanner").finish_non_exhaustive()
    }
}

impl ExpressionPlanner {
    /// A planner with DataFusion's functions and the session functions.
    pub fn new() -> Self {
        let mut state = SessionStateBuilder::new().with_default_features().build();
        for udf in session_functions() {
            // Registering into a fresh state cannot clash; an error would only mean a
            // function of the same name is replaced, which the placeholders then are.
            let _ = state.register_udf(Arc::new(udf));
        }
        Self { state }
    }

    /// `filter`'s expression over the columns of `table`, for `subject`.
    pub fn plan(
        &self,
        filter: &DataFilter,
        table: &Schema,
        subject: &Subject,
    ) -> Result<Expr, QueryError> {
        // `current_role` without parentheses is a name to SQL, not a call: it is planned as a
        // column the table lacks, then replaced as the function is.
        let mut fields: Vec<Field> = table.fields().iter().map(|f| f.as_ref().clone()).collect();
        if table.field_with_name(CURRENT_ROLE).is_err() {
            fields.push(Field::new(CURRENT_ROLE, DataType::Utf8, true));
        }
        let schema = DFSchema::try_from(Schema::new(fields))?;
        let expr = self
            .state
            .create_logical_expr(&filter.expression, &schema)
            .map_err(|err| unusable(filter, &err.to_string()))?;
        let expr = bind_session(expr, subject).map_err(|message| unusable(filter, &message))?;
        let data_type = expr
            .get_type(&schema)
            .map_err(|err| unusable(filter, &err.to_string()))?;
        match filter.kind {
            DataFilterKind::RowFilter if data_type != DataType::Boolean => Err(unusable(
                filter,
                &format!("it is of type {data_type}, not BOOLEAN"),
            )),
            DataFilterKind::RowFilter => Ok(expr),
            DataFilterKind::ColumnMask => {
                let column = filter.column.as_deref().unwrap_or_default();
                let target = table
                    .field_with_name(column)
                    .map_err(|_| unusable(filter, &format!("the column {column} is gone")))?
                    .data_type();
                if !datafusion::arrow::compute::can_cast_types(&data_type, target) {
                    return Err(unusable(
                        filter,
                        &format!("its type {data_type} cannot become the column's {target}"),
                    ));
                }
                Ok(expr.cast_to(target, &schema)?)
            }
        }
    }
}

fn unusable(filter: &DataFilter, why: &str) -> QueryError {
    QueryError::InvalidStatement(format!(
        "{} {} on {} cannot be applied: {why}",
        filter.kind.name_lowercase(),
        filter.name,
        super::describe(&filter.table)
    ))
}

/// The session functions, as placeholders for planning (never evaluated: they are replaced).
fn session_functions() -> Vec<ScalarUDF> {
    let placeholder = |name: &'static str| {
        Arc::new(move |_: &[ColumnarValue]| {
            Err(datafusion::error::DataFusionError::Internal(format!(
                "{name} is bound before a row filter or mask runs"
            )))
        })
    };
    vec![
        create_udf(
            CURRENT_USER,
            vec![],
            DataType::Utf8,
            Volatility::Stable,
            placeholder(CURRENT_USER),
        ),
        create_udf(
            CURRENT_ROLE,
            vec![],
            DataType::Utf8,
            Volatility::Stable,
            placeholder(CURRENT_ROLE),
        ),
        create_udf(
            IS_ROLE_IN_SESSION,
            vec![DataType::Utf8],
            DataType::Boolean,
            Volatility::Stable,
            placeholder(IS_ROLE_IN_SESSION),
        ),
    ]
}

/// The role chosen with `SET ROLE`, or NULL.
fn current_role(subject: &Subject) -> Expr {
    match &subject.role {
        Some(role) => lit(role.clone()),
        None => lit(ScalarValue::Utf8(None)),
    }
}

/// `expr` with the session functions replaced by their values for `subject`.
fn bind_session(expr: Expr, subject: &Subject) -> Result<Expr, String> {
    let bound = expr.transform_up(|expr| {
        if let Expr::Column(column) = &expr
            && column.name == CURRENT_ROLE
            && column.relation.is_none()
        {
            return Ok(Transformed::yes(current_role(subject)));
        }
        let Expr::ScalarFunction(ScalarFunction { func, args }) = &expr else {
            return Ok(Transformed::no(expr));
        };
        let value = match func.name() {
            CURRENT_USER => lit(subject.user.clone()),
            CURRENT_ROLE => current_role(subject),
            IS_ROLE_IN_SESSION => match args.as_slice() {
                [Expr::Literal(ScalarValue::Utf8(Some(role)), _)] => {
                    lit(subject.roles.contains(role))
                }
                _ => {
                    return Err(datafusion::error::DataFusionError::Plan(
                        "is_role_in_session takes a role's name as a string literal".into(),
                    ));
                }
            },
            _ => return Ok(Transformed::no(expr)),
        };
        Ok(Transformed::yes(value))
    });
    bound.map(|t| t.data).map_err(|err| err.to_string())
}

/// `scan` (of the table itself) with `policy` applied: its source becomes a [`PolicyTable`]
/// that reads the rows the row filters' union passes, with the masks applied, under a
/// boundary nothing of the query above crosses.
pub(super) fn apply(
    planner: &ExpressionPlanner,
    subject: &Subject,
    policy: &ScanPolicy<'_>,
    mut scan: TableScan,
) -> Result<LogicalPlan, QueryError> {
    let inner = source_as_provider(&scan.source)?;
    let table = inner.schema();
    let rows = match &policy.rows {
        Some(filters) => {
            let mut planned = Vec::new();
            for filter in filters {
                planned.push(planner.plan(filter, &table, subject)?);
            }
            // No filter at all would mean no reader: no row.
            Some(planned.into_iter().reduce(or).unwrap_or_else(|| lit(false)))
        }
        None => None,
    };
    let mut masks = Vec::new();
    for (column, mask) in &policy.masks {
        let index = table
            .index_of(column)
            .map_err(datafusion::error::DataFusionError::from)?;
        masks.push((index, planner.plan(mask, &table, subject)?));
    }
    let governed = PolicyTable::new(inner, rows, masks);
    scan.source = provider_as_source(Arc::new(governed));
    // The plan's schema of the scan, masked columns now nullable.
    let rebuilt = TableScanBuilder::new(scan.table_name, scan.source)
        .with_projection(scan.projection)
        .with_filters(scan.filters)
        .with_fetch(scan.fetch)
        .build()?;
    Ok(LogicalPlan::TableScan(rebuilt))
}

/// The table's column names.
pub(super) fn column_names(schema: &Schema) -> Vec<String> {
    schema.fields().iter().map(|f| f.name().clone()).collect()
}

/// Checks a new filter or mask's expression against `table`'s columns, as it will be planned.
pub(super) fn check_definition(
    planner: &ExpressionPlanner,
    filter: &DataFilter,
    table: &Schema,
) -> Result<(), QueryError> {
    let probe = Subject {
        user: String::new(),
        roles: BTreeSet::new(),
        admin: false,
        role: None,
    };
    planner.plan(filter, table, &probe).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Principal;
    use crate::policy::RoleSelection;
    use osprey_catalog::{AccessRecords, PrivilegeGrant, RoleMembership};

    fn table() -> SecuredObject {
        SecuredObject::Table("osprey".into(), "s".into(), "people".into())
    }

    fn filter(name: &str, role: &str, column: Option<&str>, expression: &str) -> DataFilter {
        DataFilter {
            name: name.into(),
            table: table(),
            kind: match column {
                Some(_) => DataFilterKind::ColumnMask,
                None => DataFilterKind::RowFilter,
            },
            column: column.map(Into::into),
            grantee: Grantee::Role(role.into()),
            expression: expression.into(),
            created_by: "admin".into(),
            created_at_ms: 0,
        }
    }

    /// ana holds `eu` (rows of region eu, ssn masked) and `rich` (rows of salary > 5000,
    /// ssn masked otherwise); ben holds `eu` and `all` (no filter or mask).
    fn model(filters: Vec<DataFilter>) -> AccessModel {
        let roles = ["eu", "rich", "all"];
        let member = |role: &str, user: &str| RoleMembership {
            role: role.into(),
            member: Grantee::User(user.into()),
        };
        let grant = |role: &str| PrivilegeGrant {
            grantee: Grantee::Role(role.into()),
            object: table(),
            privilege: "SELECT".into(),
            columns: Vec::new(),
            grant_option: false,
            granted_by: "admin".into(),
            granted_at_ms: 0,
        };
        AccessModel::new(
            AccessRecords {
                roles: roles.iter().map(|r| r.to_string()).collect(),
                memberships: vec![
                    member("eu", "ana"),
                    member("rich", "ana"),
                    member("eu", "ben"),
                    member("all", "ben"),
                ],
                grants: roles.iter().map(|r| grant(r)).collect(),
                data_filters: filters,
                ..Default::default()
            },
            "osprey",
        )
    }

    fn subject(model: &AccessModel, user: &str, role: RoleSelection) -> Subject {
        let principal = Principal {
            user: user.into(),
            user_id: user.into(),
            is_admin: false,
            session_id: None,
        };
        model.subject(&principal, &role)
    }

    fn columns() -> Vec<String> {
        vec!["region".into(), "ssn".into(), "salary".into()]
    }

    #[test]
    fn rows_are_the_union_of_what_each_role_gives() {
        let model = model(vec![
            filter("eu_only", "eu", None, "region = 'eu'"),
            filter("well_paid", "rich", None, "salary > 5000"),
        ]);
        let ana = subject(&model, "ana", RoleSelection::All);
        let policy = scan_policy(&model, &ana, &table(), &columns()).unwrap();
        let names: Vec<&str> = policy
            .rows
            .unwrap()
            .iter()
            .map(|f| f.name.as_str())
            .collect();
        assert_eq!(names, ["eu_only", "well_paid"]);
        // A role with SELECT and no filter gives every row.
        let ben = subject(&model, "ben", RoleSelection::All);
        assert!(
            scan_policy(&model, &ben, &table(), &columns())
                .unwrap()
                .is_empty()
        );
        // SET ROLE narrows to that role's filters.
        let ben_eu = subject(&model, "ben", RoleSelection::One("eu".into()));
        let policy = scan_policy(&model, &ben_eu, &table(), &columns()).unwrap();
        assert_eq!(policy.rows.unwrap().len(), 1);
    }

    #[test]
    fn a_column_is_masked_only_where_every_role_giving_it_masks_it() {
        let model = model(vec![
            filter("tail", "eu", Some("ssn"), "substr(ssn, 8)"),
            filter("hidden", "rich", Some("ssn"), "NULL"),
            filter("band", "rich", Some("salary"), "salary / 1000"),
        ]);
        // ana: two different masks on ssn, one per role: which applies is hers to choose.
        let ana = subject(&model, "ana", RoleSelection::All);
        let err = scan_policy(&model, &ana, &table(), &columns()).unwrap_err();
        assert!(err.to_string().contains("SET ROLE"), "{err}");
        let ana_eu = subject(&model, "ana", RoleSelection::One("eu".into()));
        let policy = scan_policy(&model, &ana_eu, &table(), &columns()).unwrap();
        let masked: Vec<&str> = policy.masks.iter().map(|(c, _)| c.as_str()).collect();
        assert_eq!(masked, ["ssn"]);
        // ben's role `all` gives ssn in clear.
        let ben = subject(&model, "ben", RoleSelection::All);
        assert!(
            scan_policy(&model, &ben, &table(), &columns())
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn session_functions_become_the_principals_values() {
        let model = model(vec![]);
        let ana = subject(&model, "ana", RoleSelection::One("eu".into()));
        let planner = ExpressionPlanner::new();
        let schema = Schema::new(vec![datafusion::arrow::datatypes::Field::new(
            "region",
            DataType::Utf8,
            true,
        )]);
        let rule = filter(
            "f",
            "eu",
            None,
            "region = current_user OR current_role = 'eu' AND is_role_in_session('rich')",
        );
        let expr = planner.plan(&rule, &schema, &ana).unwrap().to_string();
        assert!(
            expr.contains("Utf8(\"ana\")") && expr.contains("Utf8(\"eu\")"),
            "{expr}"
        );
        assert!(expr.contains("Boolean(false)"), "{expr}");
        let bad = filter("g", "eu", None, "is_role_in_session(region)");
        assert!(planner.plan(&bad, &schema, &ana).is_err());
        let not_boolean = filter("h", "eu", None, "region");
        assert!(planner.plan(&not_boolean, &schema, &ana).is_err());
    }
}
