//! The listings of governance: `SHOW GRANTS`, `SHOW ROLES`, `SHOW CURRENT ROLES` (and the
//! columns of `SHOW ROW FILTERS` and `SHOW TAGS`). A principal who is not an admin sees the
//! grants it holds (itself or through its roles) and those on what it owns, and the roles it
//! holds.

use super::enforce::describe;
use super::model::{AccessModel, Subject};
use crate::admin_sql::listing_plan;
use crate::error::QueryError;
use datafusion::arrow::array::{ArrayRef, BooleanArray, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::logical_expr::LogicalPlan;
use osprey_catalog::{DataFilter, DataFilterKind, Grantee, PrivilegeGrant, SecuredObject};
use std::sync::Arc;

/// `USER ana`, `ROLE analysts`.
pub(super) fn grantee_text(grantee: &Grantee) -> String {
    match grantee {
        Grantee::User(name) => format!("user {name}"),
        Grantee::Role(name) => format!("role {name}"),
    }
}

fn object_parts(object: &SecuredObject) -> (&'static str, String) {
    let text = describe(object);
    let (kind, name) = text.split_once(' ').unwrap_or(("", &text));
    let kind = match kind {
        "catalog" => "CATALOG",
        "schema" => "SCHEMA",
        "location" => "LOCATION",
        "tagged" => "TAGGED",
        _ => "TABLE",
    };
    (kind, name.to_string())
}

/// `SHOW GRANTS [ON object | FOR holder]`.
pub(super) fn grants(
    model: &AccessModel,
    who: &Subject,
    on: Option<&SecuredObject>,
    holder: Option<&str>,
) -> Result<LogicalPlan, QueryError> {
    let holds = |g: &PrivilegeGrant| match &g.grantee {
        Grantee::User(user) => *user == who.user,
        Grantee::Role(role) => who.roles.contains(role),
    };
    let rows: Vec<&PrivilegeGrant> = model
        .grants()
        .iter()
        .filter(|g| who.admin || holds(g) || model.owns(who, &g.object))
        .filter(|g| {
            on.is_none_or(|object| match &g.object {
                // A grant on tags is listed on what it covers, and on its own expression.
                SecuredObject::Tagged(expression) if g.object != *object => {
                    !model.tags().coverage(expression, object).is_nothing()
                }
                _ => g.object.covers(object),
            })
        })
        .filter(|g| {
            holder.is_none_or(|name| match &g.grantee {
                Grantee::User(user) | Grantee::Role(user) => user == name,
            })
        })
        .collect();
    let text = |f: &dyn Fn(&PrivilegeGrant) -> String| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(rows.iter().map(|g| f(g))))
    };
    listing_plan(
        "grants",
        grants_schema(),
        vec![
            text(&|g| match g.grantee {
                Grantee::User(_) => "USER".into(),
                Grantee::Role(_) => "ROLE".into(),
            }),
            text(&|g| match &g.grantee {
                Grantee::User(n) | Grantee::Role(n) => n.clone(),
            }),
            text(&|g| object_parts(&g.object).0.to_string()),
            text(&|g| object_parts(&g.object).1),
            text(&|g| g.privilege.clone()),
            text(&|g| g.columns.join(", ")),
            Arc::new(BooleanArray::from_iter(
                rows.iter().map(|g| Some(g.grant_option)),
            )),
            text(&|g| g.granted_by.clone()),
        ],
    )
}

/// `SHOW ROLES`: every role to admins, the roles held to others.
pub(super) fn roles(model: &AccessModel, who: &Subject) -> Result<LogicalPlan, QueryError> {
    let mut names: Vec<String> = match who.admin {
        true => model.roles().cloned().collect(),
        false => who.roles.iter().cloned().collect(),
    };
    if !names.iter().any(|n| n == super::PUBLIC_ROLE) {
        names.push(super::PUBLIC_ROLE.to_string());
    }
    names.sort();
    let holders: Vec<String> = names
        .iter()
        .map(|role| match role == super::PUBLIC_ROLE {
            true => "every user".to_string(),
            false if who.admin => model
                .holders(role)
                .iter()
                .map(grantee_text)
                .collect::<Vec<_>>()
                .join(", "),
            false => String::new(),
        })
        .collect();
    listing_plan(
        "roles",
        roles_schema(),
        vec![
            Arc::new(StringArray::from_iter_values(names)),
            Arc::new(StringArray::from_iter_values(holders)),
        ],
    )
}

/// `SHOW CURRENT ROLES`: the roles the session acts with.
pub(super) fn current_roles(who: &Subject) -> Result<LogicalPlan, QueryError> {
    listing_plan(
        "current_roles",
        current_roles_schema(),
        vec![Arc::new(StringArray::from_iter_values(
            who.roles.iter().cloned(),
        ))],
    )
}

/// The columns of `SHOW GRANTS`.
pub(super) fn grants_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("grantee_type", DataType::Utf8, false),
        Field::new("grantee", DataType::Utf8, false),
        Field::new("object_type", DataType::Utf8, false),
        Field::new("object_name", DataType::Utf8, false),
        Field::new("privilege", DataType::Utf8, false),
        Field::new("columns", DataType::Utf8, false),
        Field::new("is_grantable", DataType::Boolean, false),
        Field::new("grantor", DataType::Utf8, false),
    ]))
}

/// `SHOW ROW FILTERS | COLUMN MASKS [ON table]`: an admin sees every one, others those on
/// the tables they own.
pub(super) fn data_filters(
    model: &AccessModel,
    who: &Subject,
    kind: DataFilterKind,
    on: Option<&SecuredObject>,
) -> Result<LogicalPlan, QueryError> {
    let rows: Vec<&DataFilter> = model
        .data_filters()
        .iter()
        .filter(|f| f.kind == kind && on.is_none_or(|t| f.table == *t))
        .filter(|f| model.owns(who, &f.table))
        .collect();
    let text = |f: &dyn Fn(&DataFilter) -> String| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| f(r))))
    };
    let table_name = |f: &DataFilter| describe(&f.table).trim_start_matches("table ").to_string();
    listing_plan(
        "data_filters",
        filters_schema(),
        vec![
            text(&|f| f.name.clone()),
            text(&table_name),
            Arc::new(StringArray::from_iter(
                rows.iter().map(|f| f.column.clone()),
            )),
            text(&|f| match &f.grantee {
                Grantee::Role(role) | Grantee::User(role) => role.clone(),
            }),
            text(&|f| f.expression.clone()),
            text(&|f| f.created_by.clone()),
        ],
    )
}

/// The columns of `SHOW ROW FILTERS` and `SHOW COLUMN MASKS`.
pub(super) fn filters_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("name", DataType::Utf8, false),
        Field::new("table_name", DataType::Utf8, false),
        Field::new("column_name", DataType::Utf8, true),
        Field::new("role", DataType::Utf8, false),
        Field::new("expression", DataType::Utf8, false),
        Field::new("created_by", DataType::Utf8, false),
    ]))
}

/// The columns of `SHOW ROLES`.
pub(super) fn roles_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("role", DataType::Utf8, false),
        Field::new("held_by", DataType::Utf8, false),
    ]))
}

/// The columns of `SHOW CURRENT ROLES`.
pub(super) fn current_roles_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("role", DataType::Utf8, false)]))
}

/// The columns of `SHOW TAGS`.
pub(super) fn tag_definitions_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("tag", DataType::Utf8, false),
        Field::new("allowed_values", DataType::Utf8, false),
    ]))
}

/// The columns of `SHOW TAGS ON object`.
pub(super) fn tag_assignments_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("column_name", DataType::Utf8, true),
        Field::new("tag", DataType::Utf8, false),
        Field::new("value", DataType::Utf8, false),
        Field::new("set_on", DataType::Utf8, false),
    ]))
}
