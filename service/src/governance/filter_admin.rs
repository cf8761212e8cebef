//! Creating and dropping row filters and column masks: an admin's or the table owner's to
//! do, checked against the table's columns when made (and again each time they apply).

use super::data_filters::check_definition;
use super::filter_statements::DataFilterDefinition;
use super::grants::resolve;
use super::model::{AccessModel, Subject};
use super::statements::NamedObject;
use super::{Governance, describe, failed};
use crate::error::QueryError;
use crate::policy::NameDefaults;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::CatalogProviderList;
use osprey_catalog::{CatalogError, DataFilter, DataFilterKind, Grantee, SecuredObject, now_ms};

impl Governance {
    /// `CREATE [OR REPLACE] ROW FILTER | COLUMN MASK`.
    pub(super) async fn create_data_filter(
        &self,
        model: &AccessModel,
        who: &Subject,
        defaults: &NameDefaults,
        catalogs: &dyn CatalogProviderList,
        definition: DataFilterDefinition,
    ) -> Result<(), QueryError> {
        let table = resolve(&NamedObject::Table(definition.table.clone()), defaults);
        check_owner(model, who, &table, definition.kind, "create")?;
        let columns = table_schema(catalogs, &table).await?;
        let Grantee::Role(role) = &definition.grantee else {
            return Err(QueryError::InvalidStatement(
                "row filters and masks are for roles: FOR ROLE r or FOR PUBLIC".into(),
            ));
        };
        self.check_role(model, role)?;
        let exists = model
            .data_filters()
            .iter()
            .any(|f| f.table == table && f.kind == definition.kind && f.name == definition.name);
        if exists && definition.if_not_exists {
            return Ok(());
        }
        if let Some(column) = &definition.column {
            if columns.field_with_name(column).is_err() {
                return Err(QueryError::NotFound(format!(
                    "column {column} does not exist in {}",
                    describe(&table)
                )));
            }
            // One mask per column and role: which of two would apply is not for us to guess.
            let other = model.data_filters().iter().find(|f| {
                f.table == table
                    && f.kind == DataFilterKind::ColumnMask
                    && f.column == definition.column
                    && f.grantee == definition.grantee
                    && f.name != definition.name
            });
            if let Some(other) = other {
                return Err(QueryError::InvalidStatement(format!(
                    "column {column} of {} already has mask {} for role {role}: drop it or \
                     replace it",
                    describe(&table),
                    other.name
                )));
            }
        }
        let filter = DataFilter {
            name: definition.name,
            table,
            kind: definition.kind,
            column: definition.column,
            grantee: definition.grantee,
            expression: definition.expression,
            created_by: who.user.clone(),
            created_at_ms: now_ms(),
        };
        check_definition(&self.inner.planner, &filter, &columns)?;
        self.inner
            .store
            .put_data_filter(&filter, definition.or_replace)
            .await
            .map_err(failed)
    }

    /// `DROP ROW FILTER | COLUMN MASK [IF EXISTS] name ON table`.
    pub(super) async fn drop_data_filter(
        &self,
        model: &AccessModel,
        who: &Subject,
        defaults: &NameDefaults,
        (kind, name, table, if_exists): (DataFilterKind, String, Vec<String>, bool),
    ) -> Result<(), QueryError> {
        let table = resolve(&NamedObject::Table(table), defaults);
        check_owner(model, who, &table, kind, "drop")?;
        let removed = self
            .inner
            .store
            .remove_data_filter(&table, kind, &name)
            .await
            .map_err(failed)?;
        match removed || if_exists {
            true => Ok(()),
            false => Err(failed(CatalogError::NotFound {
                kind: kind.name_lowercase(),
                name: format!("{name} on {}", describe(&table)),
            })),
        }
    }
}

fn check_owner(
    model: &AccessModel,
    who: &Subject,
    table: &SecuredObject,
    kind: DataFilterKind,
    action: &str,
) -> Result<(), QueryError> {
    match model.owns(who, table) {
        true => Ok(()),
        false => Err(QueryError::PermissionDenied(format!(
            "permission denied: to {action} a {} on {} you must own it or be an admin",
            kind.name_lowercase(),
            describe(table)
        ))),
    }
}

/// The columns of `table`, which must exist.
pub(super) async fn table_schema(
    catalogs: &dyn CatalogProviderList,
    table: &SecuredObject,
) -> Result<SchemaRef, QueryError> {
    let missing = || QueryError::NotFound(format!("{} does not exist", describe(table)));
    let SecuredObject::Table(c, s, t) = table else {
        return Err(missing());
    };
    let schema = catalogs
        .catalog(c)
        .and_then(|catalog| catalog.schema(s))
        .ok_or_else(missing)?;
    match schema.table(t).await? {
        Some(provider) => Ok(provider.schema()),
        None => Err(missing()),
    }
}
