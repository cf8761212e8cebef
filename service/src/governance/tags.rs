//! Running tag statements: admins make tags and grant on them; an object's owner (or an
//! admin) sets and unsets tags on it. What tags mean to decisions is [`super::tagging`]'s.

use super::filter_admin::table_schema;
use super::grants::{exists, resolve};
use super::model::{AccessModel, Subject};
use super::statements::{NamedObject, TagStatement};
use super::tag_statements::TagValues;
use super::tagging::{no_such_tag, quoted_list};
use super::{Governance, describe, failed};
use crate::admin_sql::listing_plan;
use crate::error::QueryError;
use crate::policy::NameDefaults;
use datafusion::arrow::array::{ArrayRef, StringArray};
use datafusion::catalog::CatalogProviderList;
use datafusion::logical_expr::LogicalPlan;
use osprey_catalog::{CatalogError, SecuredObject, TagAssignment, TagDefinition, now_ms};
use std::sync::Arc;

impl Governance {
    /// Runs `statement`: a listing for `SHOW TAGS`, `None` for a change (which the caller
    /// makes visible by reloading the model).
    pub(super) async fn tag_statement(
        &self,
        model: &AccessModel,
        who: &Subject,
        defaults: &NameDefaults,
        catalogs: &dyn CatalogProviderList,
        statement: TagStatement,
    ) -> Result<Option<LogicalPlan>, QueryError> {
        let store = &self.inner.store;
        let require_admin = |what: &str| super::execute::require_admin(who, what);
        match statement {
            TagStatement::Show(None) => return definitions(model).map(Some),
            TagStatement::Show(Some(object)) => {
                let object = resolve(&object, defaults);
                if !model.sees(who, &object) {
                    return Err(QueryError::PermissionDenied(format!(
                        "permission denied: SHOW TAGS on {}",
                        describe(&object)
                    )));
                }
                exists(catalogs, &object).await?;
                let columns = match &object {
                    SecuredObject::Table(..) => column_names(catalogs, &object).await?,
                    _ => Vec::new(),
                };
                return assignments(model, &object, &columns).map(Some);
            }
            TagStatement::Create {
                key,
                values,
                if_not_exists,
            } => {
                require_admin("CREATE TAG")?;
                let tag = TagDefinition {
                    key,
                    values,
                    created_by: who.user.clone(),
                    created_at_ms: now_ms(),
                };
                match store.put_tag(&tag, false).await {
                    Err(CatalogError::AlreadyExists { .. }) if if_not_exists => {}
                    other => other.map_err(failed)?,
                }
            }
            TagStatement::AddValues { key, values } => {
                require_admin("ALTER TAG")?;
                let Some(held) = model.tags().definitions().get(&key) else {
                    return Err(no_such_tag(&key));
                };
                let tag = TagDefinition {
                    values: held.iter().cloned().chain(values).collect(),
                    key,
                    created_by: who.user.clone(),
                    created_at_ms: now_ms(),
                };
                store.put_tag(&tag, true).await.map_err(failed)?;
            }
            TagStatement::Drop { key, if_exists } => {
                require_admin("DROP TAG")?;
                let naming: Vec<String> = model
                    .grants()
                    .iter()
                    .filter_map(|grant| match &grant.object {
                        SecuredObject::Tagged(e) if e.terms().contains_key(&key) => {
                            Some(format!("{} ON TAGGED {e}", grant.privilege))
                        }
                        _ => None,
                    })
                    .collect();
                if !naming.is_empty() {
                    return Err(QueryError::InvalidStatement(format!(
                        "tag {key} is named by grants ({}): revoke them before dropping it",
                        naming.join("; ")
                    )));
                }
                match store.drop_tag(&key).await {
                    Err(CatalogError::NotFound { .. }) if if_exists => {}
                    other => other.map_err(failed)?,
                }
            }
            TagStatement::Assign {
                object,
                column,
                tags,
            } => {
                self.assign(model, who, defaults, catalogs, (object, column, tags))
                    .await?
            }
        }
        Ok(None)
    }

    /// `ALTER ... [ALTER COLUMN c] SET TAG k = 'v' | UNSET TAG k`.
    async fn assign(
        &self,
        model: &AccessModel,
        who: &Subject,
        defaults: &NameDefaults,
        catalogs: &dyn CatalogProviderList,
        (object, column, tags): (NamedObject, Option<String>, TagValues),
    ) -> Result<(), QueryError> {
        let object = resolve(&object, defaults);
        if !model.owns(who, &object) {
            return Err(QueryError::PermissionDenied(format!(
                "permission denied: tags on {} are set by its owner or an admin",
                describe(&object)
            )));
        }
        exists(catalogs, &object).await?;
        if let Some(column) = &column
            && !column_names(catalogs, &object).await?.contains(column)
        {
            return Err(QueryError::NotFound(format!(
                "column {column} does not exist in {}",
                describe(&object)
            )));
        }
        for (key, value) in &tags {
            let allowed = model
                .tags()
                .definitions()
                .get(key)
                .ok_or_else(|| no_such_tag(key))?;
            if let Some(value) = value
                && !allowed.contains(value)
            {
                return Err(QueryError::InvalidStatement(format!(
                    "tag {key} takes {}, not '{value}' (ALTER TAG {key} ADD VALUES adds one)",
                    quoted_list(allowed)
                )));
            }
        }
        for (key, value) in tags {
            let assignment = TagAssignment {
                object: object.clone(),
                column: column.clone(),
                key,
                value: value.clone().unwrap_or_default(),
            };
            let set = value.as_ref().map(|_| (who.user.as_str(), now_ms()));
            self.inner
                .store
                .assign_tag(&assignment, set)
                .await
                .map_err(failed)?;
        }
        Ok(())
    }
}

async fn column_names(
    catalogs: &dyn CatalogProviderList,
    table: &SecuredObject,
) -> Result<Vec<String>, QueryError> {
    let schema = table_schema(catalogs, table).await?;
    Ok(schema.fields().iter().map(|f| f.name().clone()).collect())
}

/// `SHOW TAGS`: every tag and its values.
fn definitions(model: &AccessModel) -> Result<LogicalPlan, QueryError> {
    let tags = model.tags().definitions();
    listing_plan(
        "tags",
        super::show::tag_definitions_schema(),
        vec![
            Arc::new(StringArray::from_iter_values(tags.keys().cloned())),
            Arc::new(StringArray::from_iter_values(
                tags.values().map(quoted_list),
            )),
        ],
    )
}

/// A row of `SHOW TAGS ON object`: column (none for the object), tag, value, where it is set.
type AssignmentRow = (Option<String>, String, String, String);

/// `SHOW TAGS ON object`: the tags `object` carries, then those of each of its `columns`, each
/// with where it was set.
fn assignments(
    model: &AccessModel,
    object: &SecuredObject,
    columns: &[String],
) -> Result<LogicalPlan, QueryError> {
    let index = model.tags();
    // Each tag the object carries, with where it was set.
    let inherited: Vec<(String, String, String)> = index
        .effective_with_source(object)
        .into_iter()
        .map(|(key, (value, source))| (key, value, describe(&source)))
        .collect();
    let mut rows: Vec<AssignmentRow> = inherited
        .iter()
        .map(|(key, value, set_on)| (None, key.clone(), value.clone(), set_on.clone()))
        .collect();
    for column in columns {
        let own = index.column_tags(object).and_then(|c| c.get(column));
        let mut tags: std::collections::BTreeMap<&str, (String, String)> = inherited
            .iter()
            .map(|(key, value, set_on)| (key.as_str(), (value.clone(), set_on.clone())))
            .collect();
        for (key, value) in own.into_iter().flatten() {
            tags.insert(key, (value.clone(), format!("column {column}")));
        }
        rows.extend(
            tags.into_iter().map(|(key, (value, set_on))| {
                (Some(column.clone()), key.to_string(), value, set_on)
            }),
        );
    }
    let text = |f: &dyn Fn(&AssignmentRow) -> String| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(rows.iter().map(f)))
    };
    listing_plan(
        "tag_assignments",
        super::show::tag_assignments_schema(),
        vec![
            Arc::new(StringArray::from_iter(rows.iter().map(|r| r.0.clone()))),
            text(&|r| r.1.clone()),
            text(&|r| r.2.clone()),
            text(&|r| r.3.clone()),
        ],
    )
}
